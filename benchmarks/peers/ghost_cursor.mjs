// Drives ghost-cursor's path() for benchmarks/peers.py.
// stdin:  {"seed": S, "moves": [[start_x, start_y, end_x, end_y], ...]} in screen pixels
// stdout: [[[t_ms, x_px, y_px], ...], ...], one path per move, t from 0 at the first point
// Each path is path(start, end, {useTimestamps: true}) with ghost-cursor's defaults (random speed,
// spread and step count; target width 100 px). Math.random is replaced by a seeded generator
// (mulberry32) so that a seed gives the same paths.
import { readFileSync } from 'node:fs'
import { path } from 'ghost-cursor'

function seededRandom (seed) {
  let a = seed >>> 0
  return function () {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const input = JSON.parse(readFileSync(0, 'utf8'))
Math.random = seededRandom(input.seed)
const paths = input.moves.map(([sx, sy, ex, ey]) => {
  const points = path({ x: sx, y: sy }, { x: ex, y: ey }, { useTimestamps: true })
  const t0 = points[0].timestamp
  return points.map((p) => [p.timestamp - t0, p.x, p.y])
})
process.stdout.write(JSON.stringify(paths))
