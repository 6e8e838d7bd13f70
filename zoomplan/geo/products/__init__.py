"""Scene products as users get them: one file per band (Sentinel-2 band files, SAFE folders and zips,
Landsat 8/9 Collection 2 with its MTL), STAC Items and ItemCollections, and the cloud masks they carry.

- :mod:`~zoomplan.geo.products.files`: what a product is made of (:class:`BandSet`), paths inside a zip;
- :mod:`~zoomplan.geo.products.bands`: ``--lr`` paths grouped into scenes, stacked through a VRT;
- :mod:`~zoomplan.geo.products.landsat`: the MTL's conversion to reflectance;
- :mod:`~zoomplan.geo.products.stac`: STAC Items and ItemCollections (pystac);
- :mod:`~zoomplan.geo.products.clouds`: the product's cloud mask, or the user's, on the LR grid.
"""

from zoomplan.geo.products.bands import band_set_source, folder_band_set, group_scene_inputs, zip_band_set
from zoomplan.geo.products.clouds import CLOUDY_SHARE, CloudMask, find_cloud_mask, open_cloud_mask
from zoomplan.geo.products.files import BandSet, ItemRadiometry, band_token, is_stac_json
from zoomplan.geo.products.landsat import landsat_reflectance
from zoomplan.geo.products.stac import stac_band_sets

__all__ = [
    "CLOUDY_SHARE",
    "BandSet",
    "CloudMask",
    "ItemRadiometry",
    "band_set_source",
    "band_token",
    "find_cloud_mask",
    "folder_band_set",
    "group_scene_inputs",
    "is_stac_json",
    "landsat_reflectance",
    "open_cloud_mask",
    "stac_band_sets",
    "zip_band_set",
]
