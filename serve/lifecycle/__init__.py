"""How a new model goes live: the registry on disk, the promotion gate, hot reload and re-scoring.

- :mod:`serve.lifecycle.registry`: ``CAMID_MODELS_DIR`` holds every exported model with its
  contract, card and comparisons; ``registry.json`` names the live one and keeps the history.
- :mod:`serve.lifecycle.gate`: candidate vs live model on the verified submissions and a fixed
  benchmark, group-bootstrap intervals, refusal when the candidate is worse beyond them;
  :mod:`serve.registry.groups` groups the verified photos by the registry's cameras.
- :mod:`serve.lifecycle.reload`: a running server swaps in the live model without dropping a request.
- :mod:`serve.lifecycle.rescore`: the live model re-scores pending submissions; old verdicts kept.

Everything here runs on onnxruntime through :class:`serve.engine.Engine`: no torch.
"""
