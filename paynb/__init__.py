"""paynb: ops-support toolkit for sbc-pay (pay-db, CAS/CFS, EJV, settlements, statements).

The domain lives in ``paynb.ops``; adapters in ``paynb.db``, ``paynb.cfs``, ``paynb.store``,
``paynb.formats``; notebook jobs in ``paynb.jobs``; the embedded sandbox in ``paynb.sandbox``.
"""

__version__ = "0.1.0"

from paynb.importcost import defer_iri_grammar

# before anything imports jsonschema: its IRI grammars cost ~0.8 s per process (paynb/importcost.py)
defer_iri_grammar()
