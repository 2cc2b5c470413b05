"""EXI codec tests against the reference oracle and the byte-exact corpus."""
