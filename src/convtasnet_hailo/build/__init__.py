"""`build`: from a checkpoint to the Pi's bundle in one command (docs/build.md). The steps
(``record.STEPS``): choose the plan by the device cost model, export and check, split the
calibration audio, advise the precision, compile, report, bundle; each step's inputs hashed in
``build.json`` so that ``--resume`` reruns only what is unfinished."""
