"""Workflow jobs, one function per rule; see pipeline.common for what they share."""
