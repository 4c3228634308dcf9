module ursa/bench/peers/gosql

go 1.19
