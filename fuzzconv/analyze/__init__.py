"""`fuzzconv analyze`: test the ISSTA 2024 structural-cause hypotheses on campaign databases.

data -> (characteristics, association, sequences, classify, opsets, tolerance, timeline)
-> sections -> plots -> render (HTML with embedded plots, markdown summary, figures JSON).
Needs scipy, scikit-learn and matplotlib; never imports a deep-learning framework.
"""
