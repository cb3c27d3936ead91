//! The ctl process: JSON-RPC 2.0 on a unix stream socket, one request per connection
//! (newline-terminated), with Kamailio's method names (`core.psx`, `stats.get_statistics`...).
//! `siplab ctl METHOD [ARGS]` is the client.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

/// A JSON-RPC error object's code and message.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
}

pub type RpcResult = Result<Value, RpcError>;
type Method<'a> = Box<dyn Fn(&[Value]) -> RpcResult + 'a>;

/// Method table of the ctl process; filled before the ctl process starts serving.
#[derive(Default)]
pub struct RpcRegistry<'a> {
    methods: BTreeMap<String, Method<'a>>,
}

impl<'a> RpcRegistry<'a> {
    pub fn register(&mut self, name: &str, f: impl Fn(&[Value]) -> RpcResult + 'a) {
        self.methods.insert(name.to_string(), Box::new(f));
    }

    pub fn names(&self) -> Vec<String> {
        self.methods.keys().cloned().collect()
    }

    /// Handles one JSON-RPC request text and returns the response object.
    pub fn handle(&self, request: &str) -> Value {
        let req: Value = match serde_json::from_str(request) {
            Ok(v) => v,
            Err(e) => return error_response(Value::Null, -32700, &format!("parse error: {e}")),
        };
        let id = req.get("id").cloned().unwrap_or(Value::Null);
        let Some(method) = req.get("method").and_then(Value::as_str) else {
            return error_response(id, -32600, "invalid request: no method");
        };
        let params: Vec<Value> = match req.get("params") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a.clone(),
            Some(other) => vec![other.clone()],
        };
        if method == "system.listMethods" {
            return json!({"jsonrpc": "2.0", "id": id, "result": self.names()});
        }
        match self.methods.get(method) {
            None => error_response(id, -32601, &format!("method not found: {method}")),
            Some(f) => match f(&params) {
                Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
                Err(e) => error_response(id, e.code, &e.message),
            },
        }
    }

    /// Serves forever on `listener` (the ctl process's main loop).
    pub fn serve(&self, listener: &UnixListener) -> ! {
        loop {
            let Ok((stream, _)) = listener.accept() else {
                continue;
            };
            // A stuck client must not block the ctl process.
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let mut resp = self.handle(&line).to_string();
            resp.push('\n');
            let mut w = &stream;
            let _ = w.write_all(resp.as_bytes());
        }
    }
}

fn error_response(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// Positional CLI arguments to JSON: numbers stay numbers, everything else is a string.
pub fn cli_params(args: &[String]) -> Vec<Value> {
    args.iter()
        .map(|a| match a.parse::<i64>() {
            Ok(n) => json!(n),
            Err(_) => json!(a),
        })
        .collect()
}

/// The client side: sends one request, returns the response object.
pub fn call(socket: &Path, method: &str, params: Vec<Value>) -> std::io::Result<Value> {
    let stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let req = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let mut w = &stream;
    w.write_all(format!("{req}\n").as_bytes())?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    serde_json::from_str(&line).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> RpcRegistry<'static> {
        let mut r = RpcRegistry::default();
        r.register("core.echo", |p| Ok(json!(p)));
        r.register("core.fail", |_| {
            Err(RpcError {
                code: -32602,
                message: "nope".into(),
            })
        });
        r
    }

    #[test]
    fn dispatches_by_method_and_keeps_id() {
        let resp =
            registry().handle(r#"{"jsonrpc":"2.0","id":7,"method":"core.echo","params":[1,"a"]}"#);
        assert_eq!(resp["id"], 7);
        assert_eq!(resp["result"], json!([1, "a"]));
    }

    #[test]
    fn unknown_method_and_bad_json_are_errors() {
        let r = registry();
        assert_eq!(
            r.handle(r#"{"jsonrpc":"2.0","id":1,"method":"x.y"}"#)["error"]["code"],
            -32601
        );
        assert_eq!(r.handle("{not json")["error"]["code"], -32700);
        assert_eq!(
            r.handle(r#"{"jsonrpc":"2.0","id":1,"method":"core.fail"}"#)["error"]["code"],
            -32602
        );
    }

    #[test]
    fn cli_params_keep_numbers_numeric() {
        assert_eq!(
            cli_params(&["all".into(), "5".into()]),
            vec![json!("all"), json!(5)]
        );
    }

    #[test]
    fn round_trip_over_a_unix_socket() {
        let dir = std::env::temp_dir().join(format!("siplab-ctl-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let path = dir.join("ctl");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).expect("bind");
        let server = std::thread::spawn(move || {
            let r = registry();
            let (stream, _) = listener.accept().expect("accept");
            let mut line = String::new();
            BufReader::new(&stream).read_line(&mut line).expect("read");
            let mut w = &stream;
            w.write_all(format!("{}\n", r.handle(&line)).as_bytes())
                .expect("write");
        });
        let resp = call(&path, "core.echo", vec![json!("x")]).expect("call");
        server.join().expect("server thread");
        assert_eq!(resp["result"], json!(["x"]));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
