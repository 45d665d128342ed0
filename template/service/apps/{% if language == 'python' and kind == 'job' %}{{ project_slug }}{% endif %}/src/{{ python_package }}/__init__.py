"""Event-driven job: validate then load one object of S3-compatible storage, exactly once."""
