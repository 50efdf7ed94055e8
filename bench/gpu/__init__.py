"""`make gpu-check`: the GPU proof in one command, prepared here and run once on a machine with a GPU.

``prepare`` (here, with network): the pinned llama-cpp-python sdist slimmed to what a build reads,
the wheels the run needs that a GPU machine's Python may lack, and CPU reference vectors, all under
``artifacts/gpu-check/``. ``build`` (there, offline): the CUDA wheel from that sdist with the engine
patch and the bench's LM-head switch patch, ``llama-server`` from the same build, a throwaway
virtualenv. ``sections``: each measurement, run in its own process under its own time limit,
writing its JSON as it goes. ``__main__``: the driver, which writes every section as Markdown and
JSON into one folder, partial results included. ``--dry-run`` runs all of it on the CPU with tiny
models in the current environment (the suite does, so that the script cannot rot).
"""
