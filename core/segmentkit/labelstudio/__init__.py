"""Label Studio ML backend: every installed model as assisted labelling in Label Studio.

``segmentkit serve --label-studio`` speaks Label Studio's ML backend protocol
(:mod:`.app`). The face only converts: Label Studio regions into our prompts
(:mod:`.regions`), our masks into its brush RLE (:mod:`.brush`), polygons or video
boxes, task files into images (:mod:`.sources`). Models, limits, grants and the
embedding cache are the core's, reached through one adapter (:mod:`.engine`).
"""
