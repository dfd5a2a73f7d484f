# Sourced by the comparison scripts beside it (not run by CI): the Markdown table of the medians of their
# runs. Each line of a results file is "<system> <clients> <the run's bench: line>".

# The values of field $1 in the lines on stdin.
field() { grep -o "$1=[0-9.]*" | cut -d= -f2; }
# The median of the numbers on stdin.
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# medians_table RESULTS "SYSTEM..." MSGS: a row for each number of clients in "${clients[@]}" and each
# system, in order; with MSGS=yes, a column of messages per write too.
medians_table() {
    local results=$1 systems=$2 msgs=$3 c system rows
    echo
    if [ "$msgs" = yes ]; then
        echo "| clients | system | writes/s | p50 (µs) | p99 (µs) | messages per write | runs |"
        echo "|---|---|---|---|---|---|---|"
    else
        echo "| clients | system | writes/s | p50 (µs) | p99 (µs) | runs |"
        echo "|---|---|---|---|---|---|"
    fi
    for c in "${clients[@]}"; do
        for system in $systems; do
            rows=$(grep "^$system $c " "$results")
            printf '| %s | %s | %.0f | %.0f | %.0f |' "$c" "$system" \
                "$(field ops_per_sec <<< "$rows" | median)" "$(field p50_us <<< "$rows" | median)" \
                "$(field p99_us <<< "$rows" | median)"
            [ "$msgs" != yes ] || printf ' %.2f |' "$(field msgs_per_op <<< "$rows" | median)"
            printf ' %s |\n' "$(wc -l <<< "$rows")"
        done
    done
}
