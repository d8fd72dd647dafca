"""Model families, one folder each: a typed config (``config.py``, no Keras import) beside the
Keras builder (``model.py``). ``tabcli.models.registry`` maps ``model.type`` to both."""
