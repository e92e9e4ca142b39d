// The map: a basemap if one is configured, else a graticule; the airspace the party
// may see in four layers; time and altitude filters; highlighting; drawing.
import * as L from "/static/leaflet/leaflet-src.esm.js";

const STYLES = {
  "own-activity": { color: "#1f5fbf", weight: 2, fillOpacity: 0.15 },
  "own-zone": { color: "#6b3fa0", weight: 2, dashArray: "6 4", fillOpacity: 0.08 },
  zone: { color: "#b3261e", weight: 2, dashArray: "6 4", fillOpacity: 0.12 },
  counterpart: { color: "#c25e00", weight: 2, fillOpacity: 0.25 },
  incident: { color: "#000000", weight: 2, fillOpacity: 0.6 },
};
// Live positions: mine by conformance status, others' (shared while an event lasts).
const LIVE_STYLES = {
  conforming: { color: "#1f5fbf", fillColor: "#1f5fbf", fillOpacity: 0.9, weight: 2 },
  nonconforming: { color: "#e08a00", fillColor: "#e08a00", fillOpacity: 0.9, weight: 3 },
  contingent: { color: "#b3261e", fillColor: "#b3261e", fillOpacity: 0.9, weight: 3 },
  counterpart: { color: "#5a2d00", fillColor: "#c25e00", fillOpacity: 0.9, weight: 3 },
};
const LAYER_OF = {
  "own-activity": "own", "own-zone": "own", zone: "zones", counterpart: "counterparts",
  incident: "incidents",
};

export class AirspaceMap {
  constructor(element, tileUrl) {
    this.map = L.map(element, { worldCopyJump: true, keyboard: true }).setView([12, 14], 6);
    if (tileUrl) {
      L.tileLayer(tileUrl, { maxZoom: 18, attribution: "basemap" }).addTo(this.map);
    } else {
      this.graticule = L.layerGroup().addTo(this.map);
      this.map.on("moveend", () => this.drawGraticule());
      this.drawGraticule();
    }
    this.layers = {};
    for (const name of ["own", "zones", "counterparts", "incidents", "live"]) {
      this.layers[name] = L.layerGroup().addTo(this.map);
    }
    this.highlight = L.layerGroup().addTo(this.map);
    this.sketch = L.layerGroup().addTo(this.map);
    this.features = [];
    this.filter = { time: null, altMin: null, altMax: null };
    this.fitted = false;
  }

  drawGraticule() {
    this.graticule.clearLayers();
    const b = this.map.getBounds();
    const span = Math.max(b.getEast() - b.getWest(), b.getNorth() - b.getSouth());
    const step = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30].find((s) => span / s <= 12) || 30;
    const style = { color: "#8a9bb0", weight: 1, opacity: 0.6, interactive: false };
    const west = Math.floor(b.getWest() / step) * step;
    const south = Math.max(-90, Math.floor(b.getSouth() / step) * step);
    for (let x = west; x <= b.getEast(); x += step) {
      L.polyline([[-90, x], [90, x]], style).addTo(this.graticule);
    }
    for (let y = south; y <= Math.min(90, b.getNorth()); y += step) {
      L.polyline([[y, b.getWest() - 360], [y, b.getEast() + 360]], style)
        .addTo(this.graticule);
    }
  }

  setLayerVisible(name, on) {
    if (on) this.layers[name].addTo(this.map); else this.layers[name].remove();
  }

  // features: GeoJSON features with properties.role (the airspace) or "incident".
  show(features) {
    this.features = features;
    this.render();
    if (!this.fitted && features.length) {
      const bounds = L.latLngBounds(features.map((f) => extent(f)));
      this.map.fitBounds(bounds, { maxZoom: 11, padding: [20, 20] });
      this.fitted = true;
    }
  }

  visible(p) {
    const { time, altMin, altMax } = this.filter;
    if (time !== null && p.time_start && p.time_end) {
      if (Date.parse(p.time_start) > time || Date.parse(p.time_end) < time) return false;
    }
    if (altMin !== null && p.alt_upper_m !== undefined && p.alt_upper_m < altMin) return false;
    if (altMax !== null && p.alt_lower_m !== undefined && p.alt_lower_m > altMax) return false;
    return true;
  }

  shape(f, style) {
    const p = f.properties;
    if (f.geometry.type === "Point") {
      const [lon, lat] = f.geometry.coordinates;
      return p.radius_m ? L.circle([lat, lon], { radius: p.radius_m, ...style })
        : L.circleMarker([lat, lon], { radius: 6, ...style });
    }
    return L.geoJSON(f.geometry, { style: () => style });
  }

  render() {
    for (const [name, layer] of Object.entries(this.layers)) {
      if (name !== "live") layer.clearLayers(); // (live positions have their own refresh)
    }
    for (const f of this.features) {
      const p = f.properties;
      if (!this.visible(p)) continue;
      const s = this.shape(f, STYLES[p.role] || STYLES.zone);
      s.bindTooltip(label(p));
      s.addTo(this.layers[LAYER_OF[p.role] || "zones"]);
    }
  }

  // Live positions (GeoJSON points from /v1/positions/latest): drawn as they are, whatever
  // the time and altitude filters (they are now).
  showLive(features) {
    this.layers.live.clearLayers();
    this.live = features;
    for (const f of features) {
      const p = f.properties;
      const [lon, lat] = f.geometry.coordinates;
      const style = p.role === "own-position" ? LIVE_STYLES[p.status] : LIVE_STYLES.counterpart;
      L.circleMarker([lat, lon], { radius: 7, ...style }).bindTooltip(liveLabel(p))
        .addTo(this.layers.live);
    }
  }

  // Outline the given volumes (GeoJSON-like {geometry, radius_m}) and bring them into view.
  highlightVolumes(volumes) {
    this.highlight.clearLayers();
    const style = { color: "#ffd400", weight: 4, fillOpacity: 0, interactive: false };
    const shapes = volumes.map((v) => this.shape(
      { geometry: v.geometry, properties: { radius_m: v.radius_m } }, style));
    shapes.forEach((s) => s.addTo(this.highlight));
    if (shapes.length) {
      this.map.fitBounds(L.featureGroup(shapes).getBounds(), { maxZoom: 12, padding: [30, 30] });
    }
  }

  // Drawing: onPoint(lon, lat) for each click while `drawing` is set.
  startDrawing(onPoint) {
    this.stopDrawing();
    this.onDraw = (e) => onPoint(e.latlng.lng, e.latlng.lat);
    this.map.on("click", this.onDraw);
    this.map.getContainer().classList.add("drawing");
  }

  stopDrawing() {
    if (this.onDraw) this.map.off("click", this.onDraw);
    this.onDraw = null;
    this.map.getContainer().classList.remove("drawing");
  }

  showSketch(points, radius) {
    this.sketch.clearLayers();
    const style = { color: "#0a7d32", weight: 3, dashArray: "4 4", fillOpacity: 0.1 };
    const latlngs = points.map(([lon, lat]) => [lat, lon]);
    if (radius !== null && latlngs.length === 1) {
      L.circle(latlngs[0], { radius, ...style }).addTo(this.sketch);
    } else if (latlngs.length >= 3) {
      L.polygon(latlngs, style).addTo(this.sketch);
    } else if (latlngs.length) {
      L.polyline(latlngs, style).addTo(this.sketch);
    }
    latlngs.forEach((ll) => L.circleMarker(ll, { radius: 4, ...style }).addTo(this.sketch));
  }
}

// A feature's bounds without putting it on the map (a circle's need the map).
function extent(f) {
  if (f.geometry.type === "Point") {
    const [lon, lat] = f.geometry.coordinates;
    return L.latLng(lat, lon).toBounds(2 * (f.properties.radius_m || 1));
  }
  return L.geoJSON(f.geometry).getBounds();
}

function liveLabel(p) {
  const what = p.role === "own-position"
    ? `${p.activity}: ${p.status}${p.silent ? ", silent" : ""}`
    : `${p.party}'s ${p.kind || "activity"} (${{
      zone: "in your red line", proximity: "close to yours", contingent: "off its plan near yours",
    }[p.reason] || p.reason})`;
  const speed = p.speed_mps !== undefined ? `, ${p.speed_mps} m/s, ${p.heading_deg}°` : "";
  return `${what}, ${p.alt_m} m${speed}, at ${p.time}`;
}

function label(p) {
  const what = {
    "own-activity": `My activity ${p.activity}`, "own-zone": `My red line ${p.activity}`,
    zone: `Red line ${p.zone} of ${p.party} (${p.restriction})`,
    counterpart: `${p.party}'s ${p.kind || "activity"} (conflict ${p.conflict})`,
    incident: `Incident ${p.incident}: ${p.description}`,
  }[p.role] || p.role;
  const alt = p.alt_lower_m !== undefined ? `, ${p.alt_lower_m}–${p.alt_upper_m} m` : "";
  const when = p.time_start ? `, ${p.time_start} → ${p.time_end}` : "";
  return `${what}${alt}${when}`;
}
