"""Keys and ciphers: identities, the address book, sealed key files."""
