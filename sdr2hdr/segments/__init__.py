"""Segmented conversions: resume after a crash, local worker processes, Ray.

A conversion is a plan of independent segments cut at the source's keyframes
(:mod:`~sdr2hdr.segments.plan`); each is decoded from its keyframe
(:mod:`~sdr2hdr.segments.source`), run through the model and encoded on its
own (:mod:`~sdr2hdr.segments.encode`) into the work folder
(:mod:`~sdr2hdr.segments.workdir`), recorded in its manifest
(:mod:`~sdr2hdr.segments.manifest`), and finally joined with the source's
other streams (:mod:`~sdr2hdr.segments.join`). :mod:`~sdr2hdr.segments.run`
drives it; the executors (:mod:`~sdr2hdr.segments.executors`) run the
segments in this process, in local worker processes or as Ray tasks.
"""
