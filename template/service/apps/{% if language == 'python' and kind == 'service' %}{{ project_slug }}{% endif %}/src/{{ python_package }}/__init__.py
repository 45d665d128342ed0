"""HTTP service with Kubernetes probes, Prometheus metrics and JSON logs."""
