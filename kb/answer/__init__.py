"""Answers from the index: retrieve, pack the passages into the model's context, generate with
numbered citations, then check every claim of the answer against the passages it cites.

Pure parts (``passages``, ``prompt``, ``citations``, ``grounding``, ``language``) take no model and
no store; ``generate`` holds the two generators (a local GGUF chat model, an OpenAI-compatible
endpoint) and ``flow`` ties them together as a stream of events.
"""
