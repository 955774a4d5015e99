"""The ``s3d`` operator: S3D features on their own (the network lives in ``vtzoo.backbones.s3d``)."""
