# bench-lib.sh: what load-bench.sh, load-sipp.sh and relay-bench.sh share
# (sourced, not run).

# free_port asks the kernel for a free TCP/UDP port number on loopback.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# room_pin N is the member PIN of load room N.
room_pin() { echo $((500000 + $1 * 7)); }

# bridge_config SIP ADMIN CALLS ROOMS writes a bridge configuration on
# loopback with ROOMS peer-led rooms, each with room for its share of CALLS.
bridge_config() {
	per_room=$(( ($3 + $4 - 1) / $4 ))
	echo "sip:"
	echo "  listen: [\"udp:127.0.0.1:$1\"]"
	echo "rtp:"
	echo "  address: 127.0.0.1"
	echo "  port_min: 30000"
	echo "  port_max: $((30000 + 2 * $3 + 200))"
	echo "admin:"
	echo "  listen: \"127.0.0.1:$2\""
	echo "log:"
	echo "  format: json"
	echo "groups:"
	room_groups "$4" $((per_room + 1))
}

# room_groups ROOMS MAX writes the entries of a groups: list, ROOMS
# peer-led rooms named "Room N" with room_pin's PINs and MAX members each.
room_groups() {
	i=1
	while [ "$i" -le "$1" ]; do
		echo "  - name: Room $i"
		echo "    member_pin: \"$(room_pin "$i")\""
		echo "    led_by: peer"
		echo "    max_members: $2"
		i=$((i + 1))
	done
}
