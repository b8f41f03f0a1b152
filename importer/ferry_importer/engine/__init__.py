"""The Docker Engine API and what ferry asks of it: transfer, load tracking, verify, rollback."""
