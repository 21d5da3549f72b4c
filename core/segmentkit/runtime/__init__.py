"""The plugins' shared runtime kit: torch / ONNX Runtime helpers that model plugins import.

Plugin-only: ``import segmentkit`` never imports this package, and nothing here runs at
import time; each module imports torch, numpy or onnxruntime itself, when a plugin that
already needs them imports it. It lives in the core distribution (rather than a separate
``segmentkit-runtime`` dist) so that installing a plugin needs nothing new; core's own
dependencies stay torch-free because only plugins, which depend on torch, import it.

- :mod:`.onnx`: execution providers, session options and the verified ONNX export cache;
- :mod:`.pixels`: the ImageNet rescale + normalise step and the uint8 resize of the
  transformers image processors;
- :mod:`.upsample`: bilinear upsampling followed by an argmax, done per cell of the source.
"""
