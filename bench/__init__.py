"""detente's benchmark suite: realistic traffic and side-by-side measurements."""
