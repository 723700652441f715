// bindery/eval/detection.hpp — average precision of object detections (AP@IoU, mAP).
//
// The usual protocol of detection benchmarks: for each class, the detections of every image are
// ranked by score (highest first); each one is matched greedily to the unmatched ground-truth box of
// its image and class with the highest IoU, a true positive when that IoU is >= the threshold (0.5
// for AP@0.5), otherwise a false positive (a second detection of an already matched object is a
// false positive). AP is the area under the precision-recall curve with all-point interpolation:
// precision at recall r is the best precision at any recall >= r (the curve made monotone), summed
// over every recall step (VOC 2010+; COCO samples the same curve at 101 recall points instead).
// mAP is the mean over the classes that have ground truth.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "bindery/core/error.hpp"

namespace bindery::eval {

/// Axis-aligned box, corners in pixels: x0 <= x1, y0 <= y1.
struct Box {
  double x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  double area() const { return std::max(0.0, x1 - x0) * std::max(0.0, y1 - y0); }
};

/// Intersection over union; 0 when both boxes are empty.
inline double iou(const Box& a, const Box& b) {
  const Box i{std::max(a.x0, b.x0), std::max(a.y0, b.y0), std::min(a.x1, b.x1), std::min(a.y1, b.y1)};
  const double inter = i.area(), uni = a.area() + b.area() - inter;
  return uni > 0 ? inter / uni : 0.0;
}

/// One predicted box of class `label` in image `image`, with its confidence.
struct Detection {
  int64_t image = 0, label = 0;
  double score = 0;
  Box box;
};

/// One annotated object.
struct GroundTruth {
  int64_t image = 0, label = 0;
  Box box;
};

/// One class's result. `ap` is meaningful only when `positives` > 0.
struct ClassAp {
  double ap = 0;
  int64_t positives = 0, detections = 0, true_positives = 0;
};

struct DetectionResult {
  std::vector<ClassAp> per_class;  // indexed by label
  double map = 0;                  // mean AP over classes with positives
};

/// All-point interpolated AP of a precision-recall curve given point by point in ranking order
/// (recall non-decreasing). The curve starts at recall 0.
inline double average_precision(const std::vector<double>& recall, const std::vector<double>& precision) {
  BINDERY_CHECK(recall.size() == precision.size(), ShapeError, "average_precision: ", recall.size(),
                " recall values but ", precision.size(), " precision values");
  std::vector<double> envelope = precision;
  for (size_t i = envelope.size(); i-- > 1;) envelope[i - 1] = std::max(envelope[i - 1], envelope[i]);
  double ap = 0, previous = 0;
  for (size_t i = 0; i < recall.size(); ++i) {
    BINDERY_CHECK(recall[i] >= previous, ValueError, "average_precision: recall decreases at point ", i);
    ap += (recall[i] - previous) * envelope[i];
    previous = recall[i];
  }
  return ap;
}

/// AP@`iou_threshold` per class (labels 0 .. num_classes - 1) and their mean (see the header).
/// Ties in score keep the detections' given order.
inline DetectionResult detection_ap(const std::vector<Detection>& detections,
                                    const std::vector<GroundTruth>& truth, int64_t num_classes,
                                    double iou_threshold = 0.5) {
  BINDERY_CHECK(num_classes > 0, ValueError, "detection_ap: num_classes must be > 0, got ", num_classes);
  auto check_label = [num_classes](int64_t label, const char* what) {
    BINDERY_CHECK(label >= 0 && label < num_classes, ValueError, "detection_ap: ", what, " label ", label,
                  " is outside [0, ", num_classes, ")");
  };
  for (const GroundTruth& g : truth) check_label(g.label, "ground-truth");
  for (const Detection& d : detections) check_label(d.label, "detection");
  DetectionResult result;
  result.per_class.resize(static_cast<size_t>(num_classes));
  double sum = 0;
  int64_t classes = 0;
  for (int64_t c = 0; c < num_classes; ++c) {
    std::vector<size_t> gts, dets;
    for (size_t i = 0; i < truth.size(); ++i)
      if (truth[i].label == c) gts.push_back(i);
    for (size_t i = 0; i < detections.size(); ++i)
      if (detections[i].label == c) dets.push_back(i);
    std::stable_sort(dets.begin(), dets.end(),
                     [&](size_t a, size_t b) { return detections[a].score > detections[b].score; });
    std::vector<bool> matched(gts.size(), false);
    std::vector<double> recall, precision;
    int64_t tp = 0;
    for (size_t k = 0; k < dets.size(); ++k) {
      const Detection& d = detections[dets[k]];
      double best = iou_threshold;
      size_t hit = gts.size();
      for (size_t g = 0; g < gts.size(); ++g) {
        if (matched[g] || truth[gts[g]].image != d.image) continue;
        const double o = iou(d.box, truth[gts[g]].box);
        if (o >= best) best = o, hit = g;
      }
      if (hit < gts.size()) matched[hit] = true, ++tp;
      recall.push_back(gts.empty() ? 0.0 : static_cast<double>(tp) / static_cast<double>(gts.size()));
      precision.push_back(static_cast<double>(tp) / static_cast<double>(k + 1));
    }
    ClassAp& r = result.per_class[static_cast<size_t>(c)];
    r.positives = static_cast<int64_t>(gts.size());
    r.detections = static_cast<int64_t>(dets.size());
    r.true_positives = tp;
    if (!gts.empty()) {
      r.ap = average_precision(recall, precision);
      sum += r.ap;
      ++classes;
    }
  }
  result.map = classes > 0 ? sum / static_cast<double>(classes) : 0.0;
  return result;
}

}  // namespace bindery::eval
