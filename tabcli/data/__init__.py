"""From a file to model-ready arrays: read (`io`), infer the schema (`schema`), split (`split`),
preprocess (`preprocessing`). Imports pandas and scikit-learn, not Keras."""
