package daemoncfg

import (
	"slices"
	"testing"

	"github.com/edgeward/edgeward/internal/config"
	"github.com/edgeward/edgeward/sensor/identity"
)

// The daemon's default corporate address space is the one `edgeward flows`
// and the library use (identity.DefaultInternal), so the same capture gets
// the same direction and device from every command.
func TestSensorInternalDefault(t *testing.T) {
	var c Sensor
	l, err := config.New("sensor", &c)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Load([]string{"-i", "eth1"}, func(string) (string, bool) { return "", false }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Internal, identity.DefaultInternal) {
		t.Errorf("default internal %v, want identity.DefaultInternal %v", c.Internal, identity.DefaultInternal)
	}
}
