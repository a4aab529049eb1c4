"""The Master's workers: statistic, input/output, auto-deployer and distributed lock.

Each worker is small and testable on its own; the master wires them together.
"""
