"""kb's ingestion side: settings, models, embedder, loaders, chunking, store, pipeline, CLI.

Nothing here imports ``app`` or streamlit; the app calls into this package.
"""
