// Package codec measures JSON libraries as Nova's event codec
// ([nova.Codec]) against the default, [nova.JSON] (encoding/json).
//
// It is a module of its own so that the libraries it measures never enter
// the dependency graph of Nova itself: the root module's packages import the
// standard library's encoding/json only. Each candidate is wrapped as a
// [nova.Codec] in [Candidates], in the configuration its authors offer as
// compatible with encoding/json.
//
// The package's tests compare each candidate with encoding/json on a corpus
// of values and raw inputs (TestCompat) and round-trip events through a
// [nova.Registry] (TestRegistryRoundTrip), and decode every prefix of the
// corpus inputs, which no candidate may panic on (TestTruncated); its
// benchmarks encode and decode
// events through a registry and load a 10,000-event aggregate from novamem,
// and BenchmarkInterleaved gives each candidate's time as a ratio to
// encoding/json's, measured in alternating slices so that a busy machine
// does not bias it. docs/BENCHMARKS.md ("Event codec") has the results and
// the commands:
//
//	cd bench/codec && go test -run Compat -v
//	cd bench/codec && go test -run '^$' -bench . -benchmem -count 6
//	cd bench/codec && go test -run '^$' -bench Interleaved -benchtime 200x -count 6
package codec
