"""The README's main command: a pipeline that scales itself onto three devices.

    python -m examples.demo [--short] [--forever] [--plain]
"""
