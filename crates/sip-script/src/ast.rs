//! The parsed config. Every node carries a [`Span`] so the compiler and interpreter can report
//! `file:line:col`.

use crate::lexer::Quote;
use crate::pv::PvRef;
use crate::span::Span;
use std::net::IpAddr;

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Int(i64),
    Str(StrLit),
    /// `$null`.
    Null,
    Pv(PvRef),
    Ip(IpAddr),
    /// `10.0.0.0/8`.
    Net {
        addr: IpAddr,
        prefix: u8,
    },
    Keyword(CoreKeyword),
    /// A module or core function call.
    Call(Call),
    /// `route(NAME)`; its value is the route's `return` value.
    RouteCall(String),
    Unary {
        op: UnaryOp,
        expr: Box<Expr>,
    },
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Cast {
        to: CastType,
        expr: Box<Expr>,
    },
    Defined(PvRef),
    Strlen(Box<Expr>),
    Strempty(Box<Expr>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StrLit {
    pub value: String,
    pub quote: Quote,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub name: String,
    pub args: Vec<Expr>,
    pub span: Span,
}

/// Core keywords usable in conditions (`uri == myself`, `src_ip == 1.2.3.4`, `status =~ …`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoreKeyword {
    Method,
    Uri,
    FromUri,
    ToUri,
    SrcIp,
    SrcPort,
    DstIp,
    DstPort,
    Proto,
    Af,
    Status,
    Myself,
    MsgLen,
    RetCode,
}

impl CoreKeyword {
    pub fn from_word(word: &str) -> Option<Self> {
        Some(match word {
            "method" => CoreKeyword::Method,
            "uri" => CoreKeyword::Uri,
            "from_uri" => CoreKeyword::FromUri,
            "to_uri" => CoreKeyword::ToUri,
            "src_ip" => CoreKeyword::SrcIp,
            "src_port" => CoreKeyword::SrcPort,
            "dst_ip" => CoreKeyword::DstIp,
            "dst_port" => CoreKeyword::DstPort,
            "proto" => CoreKeyword::Proto,
            "af" => CoreKeyword::Af,
            "status" => CoreKeyword::Status,
            "myself" => CoreKeyword::Myself,
            "retcode" => CoreKeyword::RetCode,
            _ => return None,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    Not,
    Neg,
    BitNot,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Or,
    And,
    BitOr,
    BitAnd,
    BitXor,
    Shl,
    Shr,
    /// `==`: the left operand's type decides.
    Eq,
    Ne,
    /// `=~`: POSIX extended regex match.
    Match,
    /// `eq` / `ne`: string compare.
    StrEq,
    StrNe,
    /// `ieq` / `ine`: integer compare.
    IntEq,
    IntNe,
    Lt,
    Le,
    Gt,
    Ge,
    /// `+`: addition for an int left side, concatenation for a string left side.
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Or => "||",
            BinOp::And => "&&",
            BinOp::BitOr => "|",
            BinOp::BitAnd => "&",
            BinOp::BitXor => "^",
            BinOp::Shl => "<<",
            BinOp::Shr => ">>",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Match => "=~",
            BinOp::StrEq => "eq",
            BinOp::StrNe => "ne",
            BinOp::IntEq => "ieq",
            BinOp::IntNe => "ine",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "mod",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CastType {
    Int,
    Str,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StmtKind {
    If {
        cond: Expr,
        then_body: Vec<Stmt>,
        else_body: Option<Vec<Stmt>>,
    },
    While {
        cond: Expr,
        body: Vec<Stmt>,
    },
    /// Cases run in order with C fall-through until `break`.
    Switch {
        subject: Expr,
        cases: Vec<SwitchCase>,
    },
    Break,
    /// `return;` returns 1.
    Return(Option<Expr>),
    Exit,
    Drop,
    Assign {
        target: PvRef,
        target_span: Span,
        value: Expr,
    },
    /// A call, `route(X)` or another expression evaluated for its effect.
    Expr(Expr),
    Block(Vec<Stmt>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct SwitchCase {
    pub label: CaseLabel,
    pub body: Vec<Stmt>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaseLabel {
    Int(i64),
    Str(String),
    Default,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RouteKind {
    /// `request_route` / unnamed `route`.
    Request,
    /// `route[NAME]`.
    Route,
    Failure,
    /// Named `onreply_route[NAME]`.
    OnReply,
    Branch,
    /// `reply_route` and the unnamed `onreply_route` of older configs.
    Reply,
    OnSend,
    Event,
}

impl RouteKind {
    pub fn keyword(self) -> &'static str {
        match self {
            RouteKind::Request => "request_route",
            RouteKind::Route => "route",
            RouteKind::Failure => "failure_route",
            RouteKind::OnReply => "onreply_route",
            RouteKind::Branch => "branch_route",
            RouteKind::Reply => "reply_route",
            RouteKind::OnSend => "onsend_route",
            RouteKind::Event => "event_route",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct RouteBlock {
    pub kind: RouteKind,
    pub name: Option<String>,
    pub body: Vec<Stmt>,
    /// The keyword.
    pub span: Span,
}

/// `loadmodule "tm.so"`: `name` is the bare module name (`tm`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadModule {
    pub name: String,
    pub path: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModParamValue {
    Int(i64),
    Str(String),
}

/// `modparam("mod|regex", "name", value)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModParam {
    pub module: String,
    pub name: String,
    pub value: ModParamValue,
    pub span: Span,
    pub module_span: Span,
    pub name_span: Span,
    pub value_span: Span,
}

/// A value in the global section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParamValue {
    Int(i64),
    Str(String),
    Bool(bool),
    /// A bare word such as `LOG_LOCAL0`.
    Word(String),
    Addr(AddrSpec),
}

/// `[proto:]host[:port] [advertise host[:port]]` as used by `listen` and `alias`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddrSpec {
    pub proto: Option<Proto>,
    pub host: Host,
    pub port: Option<u16>,
    pub advertise: Option<(Host, Option<u16>)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    Ip(IpAddr),
    Name(String),
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(a)) => write!(f, "[{a}]"),
            Host::Ip(a) => write!(f, "{a}"),
            Host::Name(n) => f.write_str(n),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Udp,
    Tcp,
    Tls,
    Sctp,
    Ws,
    Wss,
}

impl Proto {
    pub fn from_word(w: &str) -> Option<Self> {
        Some(match w.to_ascii_lowercase().as_str() {
            "udp" => Proto::Udp,
            "tcp" => Proto::Tcp,
            "tls" => Proto::Tls,
            "sctp" => Proto::Sctp,
            "ws" => Proto::Ws,
            "wss" => Proto::Wss,
            _ => return None,
        })
    }
}

/// A global `name = value` as written (also ones siplab ignores).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalParam {
    pub name: String,
    pub value: ParamValue,
    pub span: Span,
    pub value_span: Span,
}

/// A cfg-framework declaration `group.var = value [desc "text"]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CfgVar {
    pub group: String,
    pub name: String,
    pub value: ParamValue,
    pub desc: Option<String>,
    pub span: Span,
}
