//! Proxy-behaviour verdicts (placeholder; owned by helper "behaviour").
