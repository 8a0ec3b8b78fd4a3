#!/bin/sh
# bench-table.sh [FILE]: turns `go test -bench -benchmem -count N` output
# into a Markdown table with the median of each benchmark's runs (ns/op,
# the custom per-unit metrics, B/op, allocs/op).
awk '
/^pkg: / { pkg = $2; sub(/^github.com\/groupbridge\/groupbridge\//, "", pkg) }
/^Benchmark/ {
	name = pkg "." substr($1, 10); sub(/-[0-9]+$/, "", name)
	if (!(name in seen)) { seen[name] = 1; order[++n] = name }
	runs[name]++
	extra = ""
	for (i = 3; i < NF; i += 2) {
		v = $i; u = $(i + 1)
		if (u == "ns/op") ns[name, runs[name]] = v
		else if (u == "B/op") b[name] = v
		else if (u == "allocs/op") al[name] = v
		else { key = name SUBSEP u; xv[key, runs[name]] = v; units[name] = units[name] (index(units[name], u " ") ? "" : u " ") }
	}
}
function median(arr, name, k,   vals, m, i, j, t) {
	m = 0
	for (i = 1; i <= k; i++) if ((name, i) in arr) vals[++m] = arr[name, i] + 0
	for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (vals[j] < vals[i]) { t = vals[i]; vals[i] = vals[j]; vals[j] = t }
	if (m == 0) return ""
	return vals[int((m + 1) / 2)]
}
END {
	print "| benchmark | ns/op (median) | other | B/op | allocs/op |"
	print "|---|---:|---|---:|---:|"
	for (i = 1; i <= n; i++) {
		name = order[i]; k = runs[name]
		other = ""
		split(units[name], us, " ")
		for (u in us) if (us[u] != "") {
			mv = median(xv, name SUBSEP us[u], k)
			other = other (other ? ", " : "") mv " " us[u]
		}
		printf "| %s | %s | %s | %s | %s |\n", name, median(ns, name, k), other, b[name], al[name]
	}
}' "${1:--}"
