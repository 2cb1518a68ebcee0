"""Scheduled jobs over stored data; each job is pure computation plus thin I/O."""
