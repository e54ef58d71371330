"""The bottom layer: small rules every other package shares.

Strict JSON (:mod:`.strict_json`), text from the store made safe for a terminal
(:mod:`.safe_text`), store names as ids and back (:mod:`.names`), numbers as text
(:mod:`.numbers`), process-wide state shared by threads (:mod:`.threads`), the one input
checker of embedding matrices (:mod:`.validation`), local paths and fsspec URLs behind one
interface (:mod:`.urls`) and the infrastructure errors (:mod:`.errors`).

Layer: imports nothing of ssl_eval's.
"""
