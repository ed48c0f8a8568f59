"""A simulated mine site: scenario, radio model, advertising engine, ground truth.

Feeds the `sim:PATH` source (design.md, Sources), `bluegate-gateway simulate`, the
accuracy report (tools/accuracy.py) and the demo.
"""
