"""The training engine: runs a graph's training plan and reports everything as typed events.

Imports no Flask: it runs in the server's worker processes, headless from `torchloom train`, and on
GPU machines that have torch but no web stack.
"""
