"""The codec: images <-> symbols (`symbols`), symbols <-> `.sym` files (`encoder`, `decoder`), and file helpers."""
