"""Typed Jinja extensions and the context hook of devops-template."""
