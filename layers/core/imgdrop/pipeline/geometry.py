"""The geometry of a variant: which part of the oriented source it shows, and at what size."""

from __future__ import annotations

from dataclasses import dataclass

from imgdrop.profiles import VariantSpec


@dataclass(frozen=True)
class Plan:
    """Where a variant comes from in the oriented source, and its size.

    ``crop`` is (left, top, width, height) in source pixels; ``scale`` is target/crop.
    """

    spec: VariantSpec
    crop: tuple[int, int, int, int]
    width: int
    height: int

    @property
    def scale(self) -> float:
        return max(self.width / self.crop[2], self.height / self.crop[3])


def plan(spec: VariantSpec, src_w: int, src_h: int) -> Plan:
    """The crop and target size of one variant for an oriented source of src_w x src_h."""
    if spec.mode == "original":
        return Plan(spec, (0, 0, src_w, src_h), src_w, src_h)
    if spec.mode == "fit":
        s = min(1.0, spec.width / src_w, spec.height / src_h)
        return Plan(spec, (0, 0, src_w, src_h), max(1, round(src_w * s)), max(1, round(src_h * s)))
    # cover: the largest centred crop of the box's aspect, then shrink (never grow) to the box
    aspect = spec.width / spec.height
    if src_w / src_h > aspect:
        ch, cw = src_h, min(src_w, max(1, round(src_h * aspect)))
    else:
        cw, ch = src_w, min(src_h, max(1, round(src_w / aspect)))
    s = min(1.0, spec.width / cw)
    tw = min(spec.width, max(1, round(cw * s)))
    th = min(spec.height, max(1, round(ch * s)))
    return Plan(spec, ((src_w - cw) // 2, (src_h - ch) // 2, cw, ch), tw, th)
