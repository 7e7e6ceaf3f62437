"""Text processing without downloaded models: language, sentences, BM25, centrality, summaries.

Submodules are imported on use; this package imports nothing heavy.
"""
