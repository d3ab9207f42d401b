"""Benchmarks that print numbers (never assert times); run by hand, not collected by pytest."""
