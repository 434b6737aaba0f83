;; The fork benches' application: `fill` grows memory to the page count in its input
;; (a little-endian u32) and writes pseudo-random words over all of it; `touch`
;; changes one word in every 100th 4 KiB page (1% of the pages).
(module
  (import "veritee" "input_read" (func $input_read (param i32 i32 i64 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $x (mut i64) (i64.const 88172645463325252))
  (func $next (result i64)
    (global.set $x (i64.xor (global.get $x) (i64.shl (global.get $x) (i64.const 13))))
    (global.set $x (i64.xor (global.get $x) (i64.shr_u (global.get $x) (i64.const 7))))
    (global.set $x (i64.xor (global.get $x) (i64.shl (global.get $x) (i64.const 17))))
    (global.get $x))
  (func (export "fill") (result i32) (local $at i32) (local $end i32)
    (drop (call $input_read (i32.const 0) (i32.const 0) (i64.const 0) (i32.const 0) (i32.const 4)))
    (drop (memory.grow (i32.sub (i32.load (i32.const 0)) (memory.size))))
    (local.set $end (i32.mul (memory.size) (i32.const 65536)))
    (block $done (loop $words
      (br_if $done (i32.ge_u (local.get $at) (local.get $end)))
      (i64.store (local.get $at) (call $next))
      (local.set $at (i32.add (local.get $at) (i32.const 8)))
      (br $words)))
    (i32.const 0))
  (func (export "touch") (result i32) (local $at i32) (local $end i32)
    (local.set $end (i32.mul (memory.size) (i32.const 65536)))
    (block $done (loop $pages
      (br_if $done (i32.ge_u (local.get $at) (local.get $end)))
      (i64.store (local.get $at) (call $next))
      (local.set $at (i32.add (local.get $at) (i32.const 409600)))
      (br $pages)))
    (i32.const 0)))
