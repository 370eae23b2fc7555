# bench_chart.awk: the SVG chart `make bench` writes next to its text output.
#
# Input: one run a line, tab-separated: label, requests/s, p50, p99, where a
# latency is as wrk or redis-benchmark print it ("850.00us", "1.23ms",
# "1.02s"; a bare number is milliseconds; "-" when unknown). The first line
# is the chart's title.
# Output: an SVG with two horizontal bar charts, one row a run: throughput,
# then p50 and p99 latency (on one logarithmic scale: a fsync'd write's
# milliseconds and a cached read's microseconds fit on one chart). Hand-written SVG, no
# fonts or scripts fetched: it opens in any browser.
#
#   awk -f scripts/bench_chart.awk runs.tsv > bench.svg
BEGIN { FS = "\t"; n = 0 }
NR == 1 { title = $0; next }
NF >= 4 {
  n++
  label[n] = $1; rps[n] = $2 + 0; p50[n] = ms($3); p99[n] = ms($4)
  if (rps[n] > max_rps) max_rps = rps[n]
  for (k = 0; k < 2; k++) {
    v = k ? p99[n] : p50[n]
    if (v > max_lat) max_lat = v
    if (v > 0 && (min_lat == 0 || v < min_lat)) min_lat = v
  }
}
function ms(s,   v) {
  if (s == "" || s == "-") return -1
  v = s + 0
  if (s ~ /us$/) return v / 1000
  if (s ~ /ms$/) return v
  if (s ~ /s$/) return v * 1000
  return v
}
function esc(s) {
  gsub(/&/, "\\&amp;", s); gsub(/</, "\\&lt;", s); gsub(/>/, "\\&gt;", s); gsub(/"/, "\\&quot;", s)
  return s
}
function fmt_int(v,   s, out) {
  s = sprintf("%d", v); out = ""
  while (length(s) > 3) { out = "," substr(s, length(s) - 2) out; s = substr(s, 1, length(s) - 3) }
  return s out
}
function fmt_ms(v) {
  if (v < 0) return "?"
  if (v < 1) return sprintf("%.0f µs", v * 1000)
  return sprintf("%.2f ms", v)
}
END {
  LABEL_W = 330; BAR_W = 400; ROW = 20; W = LABEL_W + BAR_W + 110
  top1 = 50; h1 = n * ROW
  top2 = top1 + h1 + 50; h2 = n * (2 * ROW - 6)
  H = top2 + h2 + 20
  printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H, W, H
  printf "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n"
  printf "<text x=\"10\" y=\"20\" font-size=\"14\" font-weight=\"bold\">%s</text>\n", esc(title)
  printf "<text x=\"10\" y=\"%d\" font-weight=\"bold\">Throughput (requests/s)</text>\n", top1 - 10
  for (i = 1; i <= n; i++) {
    y = top1 + (i - 1) * ROW
    w = max_rps > 0 ? BAR_W * rps[i] / max_rps : 0
    printf "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n", LABEL_W - 8, y + 13, esc(label[i])
    printf "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"#3b82f6\"/>\n", LABEL_W, y + 2, w, ROW - 4
    printf "<text x=\"%.1f\" y=\"%d\" fill=\"#333\">%s</text>\n", LABEL_W + w + 5, y + 13, fmt_int(rps[i])
  }
  printf "<text x=\"10\" y=\"%d\" font-weight=\"bold\">Latency: <tspan fill=\"#1f9d55\">p50</tspan> and <tspan fill=\"#d64545\">p99</tspan> (log scale)</text>\n", top2 - 10
  for (i = 1; i <= n; i++) {
    y = top2 + (i - 1) * (2 * ROW - 6)
    printf "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n", LABEL_W - 8, y + 17, esc(label[i])
    bar(LABEL_W, y + 2, p50[i], "#1f9d55")
    bar(LABEL_W, y + ROW - 2, p99[i], "#d64545")
  }
  printf "</svg>\n"
}
# The scale starts a decade below the smallest latency, so that one still
# has a visible bar.
function bar(x, y, v, colour,   w, lo) {
  lo = log(min_lat / 10)
  w = (max_lat > 0 && v > 0) ? BAR_W * (log(v) - lo) / (log(max_lat) - lo) : 0
  printf "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>\n", x, y, w, ROW - 8, colour
  printf "<text x=\"%.1f\" y=\"%d\" font-size=\"10\" fill=\"#333\">%s</text>\n", x + w + 5, y + 10, fmt_ms(v)
}
