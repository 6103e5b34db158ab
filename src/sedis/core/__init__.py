"""Pure domain logic: no I/O, no network, no clock reads."""
