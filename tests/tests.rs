//! The one integration test binary (DESIGN §4, §6.7): every test here starts the real `siplab`
//! executable with a generated cfg on ephemeral loopback ports and talks real UDP (and real SIPp)
//! to it. Submodules live in `tests/it/`.

mod it;
