package proctest

import (
	"reflect"
	"strconv"
	"sync/atomic"
	"testing"
)

var (
	atomicInt64  = reflect.TypeFor[atomic.Int64]()
	atomicUint64 = reflect.TypeFor[atomic.Uint64]()
)

// CheckAtomics64Aligned fails t for every atomic.Int64 or atomic.Uint64
// in *p (p points to a struct or array, walked through nested structs and
// arrays, not through pointers) whose address is not a multiple of 8, and
// returns how many it checked. On 32-bit ARM a 64-bit atomic on an address
// that is only 4-byte aligned faults or is not atomic; Go promises these
// two types are aligned wherever they are, and this holds it to that for
// our structs, on the GOARCH the test binary was built for.
func CheckAtomics64Aligned(t testing.TB, p any) int {
	t.Helper()
	v := reflect.ValueOf(p)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		t.Fatalf("CheckAtomics64Aligned: %T is not a non-nil pointer", p)
	}
	return checkAligned(t, v.Elem(), v.Elem().Type().String())
}

func checkAligned(t testing.TB, v reflect.Value, path string) int {
	t.Helper()
	switch {
	case v.Type() == atomicInt64 || v.Type() == atomicUint64:
		if a := v.UnsafeAddr(); a%8 != 0 {
			t.Errorf("%s (%v) at %#x: not 8-byte aligned", path, v.Type(), a)
		}
		return 1
	case v.Kind() == reflect.Struct:
		n := 0
		for i := range v.NumField() {
			n += checkAligned(t, v.Field(i), path+"."+v.Type().Field(i).Name)
		}
		return n
	case v.Kind() == reflect.Array:
		n := 0
		for i := range v.Len() {
			n += checkAligned(t, v.Index(i), path+"["+strconv.Itoa(i)+"]")
		}
		return n
	}
	return 0
}
