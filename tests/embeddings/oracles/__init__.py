"""Wire-oracle tests of the remote embedding providers (official SDKs against loopback servers)."""
