"""Pure wire codecs of the remote embedding providers: build requests, parse responses; no I/O."""
