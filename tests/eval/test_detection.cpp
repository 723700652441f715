// Tests of eval/detection.hpp: IoU, all-point interpolated AP and the greedy matching of
// detection_ap, against cases computed by hand.
#include "test_util.hpp"

#include <bindery/eval/detection.hpp>

using namespace bindery;
using eval::Box;

TEST_CASE("eval: iou of boxes", "[eval][detection]") {
  CHECK(eval::iou({0, 0, 10, 10}, {0, 0, 10, 10}) == Approx(1.0));
  CHECK(eval::iou({0, 0, 10, 10}, {1, 0, 11, 10}) == Approx(90.0 / 110.0));
  CHECK(eval::iou({20, 20, 30, 30}, {20, 20, 30, 40}) == Approx(0.5));
  CHECK(eval::iou({0, 0, 10, 10}, {10, 10, 20, 20}) == 0.0);  // touching corners
  CHECK(eval::iou({0, 0, 0, 0}, {0, 0, 0, 0}) == 0.0);        // empty boxes
}

TEST_CASE("eval: all-point interpolated average precision", "[eval][detection]") {
  // Precision 1, 0.5, 2/3, 0.75 at recall 1/3, 1/3, 2/3, 1: the envelope is 1, 0.75, 0.75, 0.75.
  CHECK(eval::average_precision({1.0 / 3, 1.0 / 3, 2.0 / 3, 1.0}, {1.0, 0.5, 2.0 / 3, 0.75}) ==
        Approx(1.0 / 3 + 2.0 / 3 * 0.75));
  CHECK(eval::average_precision({}, {}) == 0.0);
  CHECK(eval::average_precision({0.5, 1.0}, {1.0, 1.0}) == Approx(1.0));
  CHECK_THROWS_AS(eval::average_precision({0.5}, {1.0, 1.0}), ShapeError);
  CHECK_THROWS_AS(eval::average_precision({0.5, 0.25}, {1.0, 1.0}), ValueError);
}

TEST_CASE("eval: detection_ap ranks, matches greedily and averages over classes", "[eval][detection]") {
  const std::vector<eval::GroundTruth> truth = {
      {0, 1, {0, 0, 10, 10}},
      {0, 1, {20, 20, 30, 30}},
      {1, 1, {0, 0, 10, 10}},    // class 1: 3 objects
      {1, 2, {50, 50, 60, 60}},  // class 2: never detected
  };
  // Given out of order: ranking by score gives d(0.9) TP, d(0.8) duplicate of a matched object FP,
  // d(0.7) TP (IoU 0.82), d(0.6) IoU exactly 0.5 with the second object.
  std::vector<eval::Detection> dets = {
      {0, 1, 0.6, {20, 20, 30, 40}}, {1, 1, 0.7, {1, 0, 11, 10}},  {0, 1, 0.9, {0, 0, 10, 10}},
      {0, 1, 0.8, {0, 0, 10, 10}},   {0, 0, 0.95, {0, 0, 10, 10}},  // class 0: no objects, not in the mean
      {1, 3, 0.5, {50, 50, 60, 60}},  // the right box with the wrong class matches nothing of class 2
  };
  const eval::DetectionResult r = eval::detection_ap(dets, truth, 4);
  REQUIRE(r.per_class.size() == 4);
  CHECK(r.per_class[1].ap == Approx(1.0 / 3 + 2.0 / 3 * 0.75));
  CHECK(r.per_class[1].positives == 3);
  CHECK(r.per_class[1].detections == 4);
  CHECK(r.per_class[1].true_positives == 3);
  CHECK(r.per_class[2].ap == 0.0);
  CHECK(r.per_class[2].positives == 1);
  CHECK(r.per_class[0].positives == 0);
  CHECK(r.per_class[3].true_positives == 0);
  CHECK(r.map == Approx((1.0 / 3 + 2.0 / 3 * 0.75 + 0.0) / 2));  // classes 1 and 2 have objects
  // At IoU 0.6 the last detection misses: precision 1, 0.5, 2/3, 0.5 at recall 1/3, 1/3, 2/3, 2/3.
  CHECK(eval::detection_ap(dets, truth, 4, 0.6).per_class[1].ap == Approx(1.0 / 3 + 1.0 / 3 * 2.0 / 3));
  // A detection matches the unmatched object it overlaps most: two objects, one box between them.
  const std::vector<eval::GroundTruth> pair = {{0, 0, {0, 0, 10, 10}}, {0, 0, {2, 0, 12, 10}}};
  const eval::DetectionResult greedy =
      eval::detection_ap({{0, 0, 0.9, {2, 0, 12, 10}}, {0, 0, 0.8, {0, 0, 10, 10}}}, pair, 1);
  CHECK(greedy.per_class[0].ap == Approx(1.0));  // the first took the second object, not the first
  CHECK_THROWS_AS(eval::detection_ap(dets, truth, 3), ValueError);  // label 3 is out of range
}
