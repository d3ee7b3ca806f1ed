//! Reports over a finished run (placeholder; owned by helper "report").
