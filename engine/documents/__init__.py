"""Document restoration: the real pairs and their fixed split (``dataset``), synthetic dirty pages (``synth``),
the classical cleaner (``classical``) and the training folders for the Restormer model (``prepare``).

Nothing here runs at import time; torch is never imported (the network lives in engine/training/archs).
"""
