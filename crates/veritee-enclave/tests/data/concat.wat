;; Copies input 0, then input 1, of its own compartment to its output.
(module
  (import "veritee" "input_read" (func $read (param i32 i32 i64 i32 i32) (result i32)))
  (import "veritee" "output_write" (func $write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func $copy (param $i i32) (local $n i32) (local $off i64)
    (block $done (loop $next
      (local.set $n (call $read (i32.const 0) (local.get $i) (local.get $off) (i32.const 0) (i32.const 4096)))
      (br_if $done (i32.eqz (local.get $n)))
      (drop (call $write (i32.const 0) (local.get $n)))
      (local.set $off (i64.add (local.get $off) (i64.extend_i32_u (local.get $n))))
      (br $next))))
  (func (export "run") (result i32) (call $copy (i32.const 0)) (call $copy (i32.const 1)) (i32.const 7)))
