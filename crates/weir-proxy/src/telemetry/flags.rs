//! Envoy response flags (spec §9), as a small bitset.

/// A set of response flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Flags(u32);

macro_rules! flags {
    ($($name:ident = $bit:expr, $text:expr;)*) => {
        impl Flags {
            $(
                #[doc = concat!("`", $text, "`")]
                pub const $name: Flags = Flags(1 << $bit);
            )*
            const ALL: &'static [(Flags, &'static str)] = &[$((Flags::$name, $text)),*];
        }
    };
}

flags! {
    NO_HEALTHY_UPSTREAM = 0, "UH";
    UPSTREAM_CONNECTION_FAILURE = 1, "UF";
    UPSTREAM_OVERFLOW = 2, "UO";
    NO_ROUTE = 3, "NR";
    UPSTREAM_RETRY_LIMIT = 4, "URX";
    NO_CLUSTER = 5, "NC";
    DURATION_TIMEOUT = 6, "DT";
    DOWNSTREAM_CONNECTION_TERMINATION = 7, "DC";
    UPSTREAM_REQUEST_TIMEOUT = 8, "UT";
    LOCAL_RESET = 9, "LR";
    UPSTREAM_REMOTE_RESET = 10, "UR";
    UPSTREAM_CONNECTION_TERMINATION = 11, "UC";
    DELAY_INJECTED = 12, "DI";
    FAULT_INJECTED = 13, "FI";
    RATE_LIMITED = 14, "RL";
    DOWNSTREAM_PROTOCOL_ERROR = 15, "DPE";
    UPSTREAM_PROTOCOL_ERROR = 16, "UPE";
}

impl Flags {
    /// No flag.
    pub const NONE: Flags = Flags(0);

    /// Adds flags.
    pub fn insert(&mut self, other: Flags) {
        self.0 |= other.0;
    }

    /// True when all of `other` is set.
    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    /// True when empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// `-` or the flags joined with `,`, in Envoy's order.
    pub fn render(self) -> String {
        if self.is_empty() {
            return "-".into();
        }
        let names: Vec<&str> = Flags::ALL.iter().filter(|(f, _)| self.contains(*f)).map(|(_, n)| *n).collect();
        names.join(",")
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_envoy() {
        assert_eq!(Flags::NONE.render(), "-");
        assert_eq!(Flags::NO_ROUTE.render(), "NR");
        assert_eq!((Flags::UPSTREAM_CONNECTION_FAILURE | Flags::UPSTREAM_RETRY_LIMIT).render(), "UF,URX");
    }
}
